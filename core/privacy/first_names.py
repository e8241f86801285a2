"""Common given names of Europe and the English-speaking world, for telling a personal name
("Ana Novak", "Marko Kovač") from other capitalised word pairs when spaCy's small English
model does not tag it (it reads most Slavic, Nordic and Hungarian names as ORG, GPE or nothing).

General knowledge, written for this purpose (not taken from any benchmark data). Names that
are also everyday English words (Will, May, Mark, Grace, Rose, Bill, ...) are left out on
purpose: a lone capitalised "May" is more often the month. Matching is on the exact
capitalised form; `core.privacy.ner_rules.names_by_given_name` uses it.
"""

from __future__ import annotations

_NAMES = """
Aaron Abigail Adam Adrian Adriana Agnes Aidan Aisha Alan Albert Alberto Aleksandar Aleksander
Aleksandra Aleksej Alenka Alessandro Alessia Alex Alexander Alexandra Alexandre Alexei Alfred
Ali Alice Alicia Alina Alison Aljaž Alma Amanda Amelia Amelie Amir Ana Anastasia Anders Andrea
Andreas Andrej Andrew Andrzej Angela Angelika Anita Anja Anna Anne Annika Anton Antonio Antoine
Antti Anže Ari Arne Arnold Arthur Astrid Audrey Barbara Barbora Bart Beata Beatrice Ben
Benedikt Benjamin Bernard Bernd Bettina Bianca Birgit Björn Blaž Bogdan Bojan Bojana Boris
Boštjan Božidar Bram Branko Brian Brigitte Bruno Caitlin Camille Carla Carlo Carlos Carmen
Carolina Caroline Catherine Cecilia Charles Charlotte Chiara Chloe Christian Christina
Christine Christoph Christopher Claire Clara Claudia Claudio Colin Conor Cristina Cyril Damjan
Damian Daniel Daniela Danijel Danijela Daria Dariusz Darja David Davide Dejan Denis Denise
Diana Diego Dimitri Dimitrios Dominik Dominika Doris Dorota Dragan Dušan Edward Elena Eleni
Elias Elif Elisa Elisabeth Elizabeth Ella Ellen Elsa Emil Emilia Emily Emma Enrico Eric Erik
Erika Ernst Esther Ethan Eva Ewa Fabian Fabio Federico Felix Filip Fiona Florian Francesca
Francesco Francisco Frank Franz Franziska Fred Frederik Gabriel Gabriela Gabriele Gašper
Georg George Georgios Gerhard Giorgio Giovanni Giulia Giuseppe Goran Gordana Gregor Gustav
Hana Hannah Hans Harald Harry Heidi Heike Heinz Helen Helena Helga Henrik Henry Hugo Ida Igor
Ines Ingrid Irena Irene Isabel Isabella Isabelle Ivan Ivana Ivo Jacob Jakob Jakub James Jan
Jana Janez Janko Jaroslav Jasmina Jasna Jean Jens Jeremy Jessica Joanna Johan Johann Johanna
John Jonas Jonathan Jorge José Josef Joseph Josip Jože Judith Julia Julian Juliane Julien
Julija Jure Jürgen Justyna Kai Karel Karin Karina Karl Karolina Katarina Katarzyna Kate
Katharina Katherine Kathrin Katja Katrin Kevin Klara Klaus Klemen Kristian Kristina Krzysztof
Lana Lara Lars Laura Lea Leah Lena Leon Leonardo Liam Lidija Lina Linda Lisa Livia Ljubica
Lorenzo Louis Louise Luca Lucas Lucia Lucie Luis Luisa Lukas Luka Łukasz Maja Malin Manuel
Manuela Marc Marcel Marco Marcus Marek Margit Maria Marie Marija Marina Mario Marion Marius
Marjan Marjeta Marko Markus Marta Martin Martina Mateja Matej Mateusz Matija Matjaž Matteo
Matthew Matthias Maximilian Maxim Mehmet Melanie Mia Michael Michaela Michal Michał Michel
Michele Miguel Mihael Mihaela Mikael Mikko Milan Milena Miloš Miroslav Mirjana Mitja Mohamed
Mohammed Monika Nadia Nadja Natalia Natalie Natasha Nataša Nathan Nejc Neža Nicola Nicolas
Nicole Niels Nika Nikola Nikolai Nikolaj Nikolaos Nina Noah Nora Olga Oliver Olivia Oscar
Oskar Pablo Paolo Patricia Patrick Paul Paula Pauline Pavel Pavla Peter Petar Petra Philip
Philipp Pierre Pietro Piotr Polona Primož Rafael Rafał Ralf Ramona Rebecca Robert Roberta
Roberto Robin Rok Roman Rosa Rudolf Sabine Sabina Samuel Sandra Sara Sarah Sascha Sebastian
Sergei Sergej Sergio Silvia Simon Simona Simone Slavko Sofia Sofie Sonja Sophia Sophie
Špela Stefan Stefanie Stefano Stella Stephan Stephanie Steven Susanne Sven Svetlana Tadej
Tamara Tanja Tatjana Teresa Thomas Tijana Tilen Timo Tina Tobias Tom Tomas Tomasz Tomaž
Tomislav Torsten Ulrich Ulrike Urška Valentina Valentin Vanessa Vera Veronika
Victoria Viktor Viktoria Vincent Vincenzo Vladimir Vojtěch Walter Werner William Wojciech
Wolfgang Yann Yasmin Yusuf Zala Zdenka Zoran Zofia Zsófia Žiga Zuzana
Ágnes Anikó Attila Balázs Csaba Dóra Erzsébet Gábor Gergely Istvan István Judit Katalin
Krisztina László Márta Péter Tamás Zoltán Zsolt
Aino Eero Eija Juha Jukka Kaisa Kalle Kari Kirsi Leena Liisa Matti Minna Pekka Riikka Sanna
Satu Seppo Tuomas Tuula Veikko Ville
Åsa Bjørn Erling Freja Frida Gunnar Hanne Ingeborg Kjell Knut Linnea Magnus Mette Nils Ole
Ragnar Sigrid Solveig Søren Stig Torbjørn Trond Ulf
Ahmet Ayşe Emre Fatma Mustafa Zeynep
Aleksei Anatoly Dmitri Dmitry Ekaterina Irina Ludmila Natalya Oksana Pavlo Tetiana Yulia
Yuri Andrii Olena Taras
"""

GIVEN_NAMES = frozenset(_NAMES.split())
